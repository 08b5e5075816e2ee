package config

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// whsecPrefix marks a base64-encoded Standard Webhooks secret.
const whsecPrefix = "whsec_"

// SigningKeys decodes a signing_secret: one or more secrets separated by
// spaces (a rotation). A secret that starts with "whsec_" is the base64 of
// the key (the form the Standard Webhooks libraries generate); any other
// secret is the key itself. Validation and the signer both call it, so
// `relay check` refuses exactly what `relay serve` would. The error never
// contains the secret.
func SigningKeys(secret string) ([][]byte, error) {
	fields := strings.Fields(secret)
	if len(fields) == 0 {
		return nil, fmt.Errorf("empty")
	}
	keys := make([][]byte, 0, len(fields))
	for i, f := range fields {
		key := []byte(f)
		if rest, ok := strings.CutPrefix(f, whsecPrefix); ok {
			k, err := base64.StdEncoding.DecodeString(rest)
			if err != nil {
				return nil, fmt.Errorf("secret %d: whsec_ value is not base64", i+1)
			}
			key = k
		}
		if len(key) == 0 {
			return nil, fmt.Errorf("secret %d is empty", i+1)
		}
		keys = append(keys, key)
	}
	return keys, nil
}
