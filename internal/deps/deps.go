package deps
import (
 _ "github.com/gorilla/mux"
 _ "github.com/hashicorp/go-retryablehttp"
 _ "github.com/redis/go-redis/v9"
 _ "gopkg.in/yaml.v3"
 _ "go.etcd.io/bbolt"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "golang.org/x/time/rate"
 _ "github.com/schollz/progressbar/v3"
 _ "github.com/oklog/ulid/v2"
)
