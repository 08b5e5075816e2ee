-- wrk script: POSTs the seed callback body with a unique mid per request,
-- so every request is a new event (no dedupe hits).
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

local template = [[{
      "bridge": 91806828XXXX,
      "from": 91891952XXXX,
      "to": 91886713XXXX,
      "source": "OBD",
      "mid": "%s",
      "flow_id": 123,
      "start_at": "2021-04-09 16:27:39",
      "end_at": "2021-04-09 16:27:55",
      "duration": "23",
      "status": "ANSWER",
      "recording_url": "https://youraudiofilelocation/",
}]]

local n = 0
local run = tostring(os.time())

request = function()
  n = n + 1
  local body = string.format(template, run .. "-" .. tid .. "-" .. n)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
