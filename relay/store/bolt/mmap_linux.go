package bolt

import "syscall"

// mmapFlags has the kernel read relay.db in when Open first maps it: one
// sequential read instead of the page-at-a-time reads of the tree walk
// that rebuilds the freelist on open (NoFreelistSync), as etcd does. A
// relay restarted cold over 420 MB was ready in 1.2 s instead of 5.3 – 6.4
// (docs/benchmarks.md, "Embedded store: time to start").
const mmapFlags = syscall.MAP_POPULATE
