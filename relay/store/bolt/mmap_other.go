//go:build !linux

package bolt

// mmapFlags is Linux's MAP_POPULATE there (mmap_linux.go); elsewhere the
// file is read in as the freelist walk touches it.
const mmapFlags = 0
