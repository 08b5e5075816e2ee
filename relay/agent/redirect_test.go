package agent_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/relaygw/relay/relay/store"
)

// TestAgentFollowsRedirects: through an agent, a 307 to another server is
// followed when the destination says follow_redirects (credentials and the
// destination's headers are not carried to the other host), and recorded as a redirect failure with its
// Location when it does not, as for direct delivery.
func TestAgentFollowsRedirects(t *testing.T) {
	tests := []struct {
		name     string
		follow   bool
		location func(target string) string // where the receiver redirects
		want     string                     // in the first attempt's error; "" for delivered
	}{
		{"followed", true, func(target string) string { return target + "/moved" }, ""},
		{"not followed when off", false, func(target string) string { return target + "/moved" },
			"redirect not followed: status 307 to %s/moved"},
		{"not followed to another scheme", true, func(string) string { return "https://127.0.0.1:1/moved" },
			"redirect not followed: status 307 to https://127.0.0.1:1/moved (not followed: it changes the scheme)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := officeDest + "    headers: {Authorization: Bearer k-office, X-Api-Key: k-api}\n"
			if tt.follow {
				extra += "    follow_redirects: true\n"
			}
			e := newEnv(t, extra)
			target := newSink(t)
			e.sink.answer(http.StatusTemporaryRedirect, tt.location(target.URL))
			_, stop := startAgent(t, e.clientOptions(e.proxy))
			id := e.post(t, "m-redirect")

			if tt.want == "" {
				got := target.answered(t, 1)[0]
				if want := `{"mid":"m-redirect","status":"ANSWER"}`; string(got.body) != want {
					t.Errorf("body at the redirect's target %q, want %q", got.body, want)
				}
				if a := got.header.Get("Authorization"); a != "" {
					t.Errorf("Authorization %q carried to another host", a)
				}
				if k := got.header.Get("X-Api-Key"); k != "" {
					t.Errorf("X-Api-Key %q carried to another host", k)
				}
				stop()
				d := e.inspect(t, id)
				if d.State != store.StateDelivered || len(d.AttemptLog) != 1 || d.AttemptLog[0].Status != http.StatusOK {
					t.Errorf("delivery %s, attempts %+v; want delivered by one attempt, status 200", d.State, d.AttemptLog)
				}
				return
			}
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, target.URL)
			}
			waitFor(t, "the redirect failure to be recorded", func() bool { return e.office(t).LastError != "" })
			stop()
			d := e.inspect(t, id)
			if len(d.AttemptLog) == 0 || d.AttemptLog[0].Status != http.StatusTemporaryRedirect || !strings.Contains(d.AttemptLog[0].Error, want) {
				t.Fatalf("attempts %+v; want the first with status 307 and error %q", d.AttemptLog, want)
			}
			if n := len(target.requests()); n != 0 {
				t.Errorf("the redirect's target got %d requests, want none", n)
			}
		})
	}
}
