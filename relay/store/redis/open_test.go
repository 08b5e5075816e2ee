package redis

import (
	"context"
	"strings"
	"testing"
)

// TestOpenErrorRedacted: a URL that go-redis cannot parse is refused with
// neither its password nor its query values in the error, even where
// url.Parse quotes the piece it could not read.
func TestOpenErrorRedacted(t *testing.T) {
	for _, raw := range []string{
		"redis://default:Pa55",                        // no '@': the password reads as a port
		"redis://:Pa55@127.0.0.1:1/0?token=s3cret",    // an option go-redis refuses
		"redis://:Pa55@127.0.0.1:1/not-a-db?x=s3cret", // a database that is not a number
	} {
		_, err := Open(context.Background(), Options{URL: raw})
		if err == nil {
			t.Fatalf("Open(%s) succeeded", raw)
		}
		for _, secret := range []string{"Pa55", "s3cret"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Open error %q shows %q", err, secret)
			}
		}
	}
}
