package ui_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/relaygw/relay/relay/admin/ui"
)

// Every console file is served with a policy that forbids other origins,
// inline script and framing.
func TestHandlerServesAssets(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/ui", ui.Handler()))
	defer srv.Close()
	for _, tc := range []struct{ path, ctype, holds string }{
		{"/ui/", "text/html", `<script src="app.js"`},
		{"/ui/app.js", "javascript", "sessionStorage"},
		{"/ui/app.css", "text/css", "--accent"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) ||
			!strings.Contains(string(body), tc.holds) {
			t.Errorf("GET %s: %d %s, body holds %q: %v", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.holds,
				strings.Contains(string(body), tc.holds))
		}
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: Content-Security-Policy %q lacks %q", tc.path, csp, want)
			}
		}
	}
	if resp, err := http.Get(srv.URL + "/ui/nope.js"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET a missing file: %v %v", resp, err)
	}
}

// The console loads nothing from elsewhere: no file names an http(s) URL,
// and the token never goes into a URL.
func TestAssetsAreSelfContained(t *testing.T) {
	url := regexp.MustCompile(`https?://`)
	err := fs.WalkDir(os.DirFS("assets"), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile("assets/" + path)
		if err != nil {
			return err
		}
		if loc := url.FindIndex(b); loc != nil {
			t.Errorf("%s names a URL: %q", path, b[loc[0]:min(len(b), loc[0]+60)])
		}
		if strings.Contains(string(b), "token=") {
			t.Errorf("%s puts a token in a URL", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
