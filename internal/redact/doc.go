// Package redact makes URLs and the errors that quote them fit for logs,
// attempt records, `relay check` and API answers: a URL's user name,
// password and every query value may be a credential (redis://:pw@host,
// https://KEY@api.example/, ?token=...). It is the one place that decides
// what of a URL may be shown.
//
// It must not know where the text goes (logs, records, answers), and it
// imports none of Relay's packages.
package redact
