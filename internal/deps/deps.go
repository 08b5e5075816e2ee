package deps

import (
	_ "github.com/gorilla/mux"
	_ "github.com/hashicorp/go-retryablehttp"
	_ "github.com/oklog/ulid/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/schollz/progressbar/v3"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/time/rate"
	_ "gopkg.in/yaml.v3"
)
