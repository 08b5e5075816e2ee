// Package storetest is the conformance suite that every store.Store backend
// must pass. A backend's own test calls Run with a function that opens fresh,
// isolated storage; the suite then checks the whole contract of package store:
// accept and dedupe, leasing and lease tokens, retries, the dead-letter queue,
// parked events, depths, persistence across a reopen, and Close.
//
// The suite never asserts how fast a backend is. Where the contract involves
// time (lease expiry, dedupe TTL, due times) it either uses margins of an hour
// or polls with a generous deadline, so it stays correct on a loaded machine
// and under -race.
//
// It must not know how a backend keeps its data: it tests only through the
// store.Store interface.
package storetest
