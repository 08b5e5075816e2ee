// Package store defines the contract between ingest, delivery and admin: the
// domain types (Event, Delivery, Attempt) and the Store interface that every
// backend implements. Ingest and delivery never talk to each other directly;
// they meet only through a Store.
//
// A backend must make every method that touches more than one record atomic
// (a bbolt transaction, a Redis Lua script), and must pass the conformance
// suite in package storetest.
//
// It must not know HTTP, config files or any backend: backends import it,
// never the reverse.
package store
