package redis

import (
	"testing"

	"github.com/relaygw/relay/internal/testredis"
	"github.com/relaygw/relay/relay/store"
	"github.com/relaygw/relay/relay/store/storetest"
)

func withCluster(o *Options) { o.Cluster = true }

// TestConformanceCluster runs the store's whole contract on a three-master
// Redis Cluster: the scripts touch many keys at once, which a cluster only
// allows within one slot.
func TestConformanceCluster(t *testing.T) {
	c := testredis.StartCluster(t, false)
	storetest.Run(t, func(t testing.TB) storetest.Opener {
		prefix := uniquePrefix(t)
		return func(t testing.TB) store.Store {
			return openStore(t, c.URL(), prefix, withCluster)
		}
	})
}

func TestClusterPrefix(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"relay:", "{relay:}"},
		{"{relay}:", "{relay}:"},
		{"app:{relay}:", "app:{relay}:"},
		{"odd{}:", "{odd{}:}"}, // an empty tag hashes the whole key, so it is no tag
		{"half{open:", "{half{open:}"},
	} {
		if got := clusterPrefix(tc.in); got != tc.want {
			t.Errorf("clusterPrefix(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
