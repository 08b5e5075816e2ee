// Command relay is the Relay webhook relay: `relay serve` runs the proxy,
// `relay check` validates a config file, the admin commands (dlq, events
// and events tail, parked, destinations, reload, health) talk to a running
// relay, `relay send`, `relay sink` and `relay try` help try a route,
// `relay compact` shrinks a stopped relay's embedded store, `relay agent`
// delivers from behind a firewall, `relay version` prints the build.
// `relay help` lists them all.
//
// The command owns flags, the process's signals, stdout/stderr and exit
// codes, and the HTTP client of the admin API; it must not hold relay
// behaviour: serving, delivery and storage live in package relay and below.
package main
