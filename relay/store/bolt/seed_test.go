package bolt

import "fmt"

// seedBody is the seed provider's callback (about 350 bytes, trailing comma
// and all), made distinct by n.
func seedBody(n int) []byte {
	return fmt.Appendf(nil, `{
      "bridge": 918068281234,
      "from": 918919521234,
      "to": 918867131234,
      "source": "OBD",
      "mid": "1234-1333-%08d",
      "flow_id": 123,
      "start_at": "2021-04-09 16:27:39",
      "end_at": "2021-04-09 16:27:55",
      "duration": "23",
      "status": "ANSWER",
      "recording_url": "https://youraudiofilelocation/",
}`, n)
}
