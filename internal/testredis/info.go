package testredis

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// InfoFields parses the text of an INFO reply into its fields: every
// "name:value" line, section headers and blank lines left out.
func InfoFields(txt string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(txt) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

// InfoCPU is the server's own user and system CPU time (used_cpu_user plus
// used_cpu_sys) from the fields of INFO cpu; forked children, such as an
// AOF rewrite, are not in it.
func InfoCPU(fields map[string]string) (time.Duration, error) {
	var total float64
	for _, k := range []string{"used_cpu_sys", "used_cpu_user"} {
		f, err := strconv.ParseFloat(fields[k], 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu: %s: %w", k, err)
		}
		total += f
	}
	return time.Duration(total * float64(time.Second)), nil
}
