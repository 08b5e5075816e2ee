package testredis

import (
	"testing"
	"time"
)

func TestInfoFields(t *testing.T) {
	txt := "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:0.250000\r\n\r\n# Stats\r\ntotal_forks:3\r\nrole:master\r\n"
	f := InfoFields(txt)
	if len(f) != 4 || f["total_forks"] != "3" || f["role"] != "master" {
		t.Fatalf("InfoFields = %v", f)
	}
	cpu, err := InfoCPU(f)
	if err != nil || cpu != 1750*time.Millisecond {
		t.Fatalf("InfoCPU = %v, %v; want 1.75s", cpu, err)
	}
	if _, err := InfoCPU(map[string]string{"used_cpu_sys": "1"}); err == nil {
		t.Fatal("InfoCPU without used_cpu_user gave no error")
	}
}
