// Package admin owns the operator-facing listener: health and readiness
// probes now; the metrics and the /api routes of SPEC section 6 build on it.
package admin
