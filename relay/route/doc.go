// Package route owns the routing table: which destinations an event of a
// given webhook_id, with given body fields, is delivered to.
//
// The configuration stays plain data (config.Route); New compiles it once into
// a Table indexed by webhook_id, which is read-only afterwards and safe for
// concurrent use. A config reload builds a new Table and swaps it in whole.
//
// Matching is exact text comparison: a matcher {flow_id: "123"} matches a body
// whose flow_id is 123 or "123", because ingest keeps every field as the text
// the provider wrote. Comparison is case-sensitive, and a field missing from
// the body never matches.
//
// A route may also have a jq filter (routes[].filter): it runs only once the
// match fields matched, on the body parsed once per event and only when a
// filter needs it, and the route matches when its first output is true.
// Filters are compiled and run by relay/transform, under its limits.
//
// It must not know what happens to a matched event: it returns destination
// names, and knows neither the store, nor delivery, nor HTTP.
package route
