package jsonenc

import "encoding/json"

// AppendString appends s quoted as json.Marshal quotes it. Ids, names and
// most keys are plain ASCII and are copied as they are; anything else goes
// through encoding/json, so its escaping rules (HTML characters, invalid
// UTF-8, U+2028) stay the only ones.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
