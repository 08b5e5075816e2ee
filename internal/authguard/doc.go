// Package authguard holds what the relay's two authenticated surfaces (the
// admin API and the agent protocol) share: reading a bearer token from an
// Authorization header, comparing tokens in constant time, and throttling
// the failed attempts of each source address. It knows nothing of HTTP
// routes, config files or the store.
package authguard
