package config

import "github.com/relaygw/relay/internal/whsig"

// SigningKeys decodes a signing_secret: one or more secrets separated by
// spaces (a rotation), "whsec_" ones base64. It is whsig.ParseKeys, which
// the signer and ingest's verifier use too, so `relay check` refuses
// exactly what `relay serve` would. The error never contains the secret.
func SigningKeys(secret string) ([][]byte, error) {
	return whsig.ParseKeys(secret)
}
