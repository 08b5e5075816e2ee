// Package ui owns the web console's assets: a small single-page app in
// plain HTML, CSS and JavaScript, embedded in the binary and served by the
// admin listener under /ui/. It holds no logic of its own on the server:
// the page calls the admin API with the token the user typed, and the API
// enforces what an admin or portal token may see and do. It must not know
// the relay, the store or the config; it only serves files.
package ui
