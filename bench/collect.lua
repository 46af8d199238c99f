-- wrk script: POST realistic batches (10 events) as many visitors, each with its signed cookie.
local cookies, i = {}, 0
for line in io.lines(os.getenv("MA_COOKIES")) do cookies[#cookies + 1] = line end

request = function()
  i = i + 1
  local t = os.time() * 1000
  local body = string.format('{"v":1,"events":[' ..
    '{"type":"pageview","t":%d,"page":3,"path":"/","previous":"/article/"},' ..
    '{"type":"impression","t":%d,"page":3,"path":"/","block":"welcome-hero","variant":"returning"},' ..
    '{"type":"impression","t":%d,"page":3,"path":"/","block":"newsletter-offer","variant":"default","kind":"article"},' ..
    '{"type":"scroll","t":%d,"page":3,"path":"/","value":25},' ..
    '{"type":"scroll","t":%d,"page":3,"path":"/","value":50},' ..
    '{"type":"dwell","t":%d,"page":3,"path":"/","block":"welcome-hero","variant":"returning","value":5300},' ..
    '{"type":"click","t":%d,"page":3,"path":"/","block":"welcome-hero","variant":"returning","name":"What\'s new"},' ..
    '{"type":"abandon","t":%d,"page":3,"path":"/","block":"newsletter-offer","variant":"default","value":800,"kind":"article"},' ..
    '{"type":"scroll","t":%d,"page":3,"path":"/","value":75},' ..
    '{"type":"conversion","t":%d,"page":3,"path":"/","name":"newsletter-signup"}]}',
    t, t, t, t, t, t, t, t, t, t)
  local headers = {["Content-Type"] = "application/json", ["Origin"] = "http://127.0.0.1:" .. os.getenv("MA_PORT"),
                   ["Cookie"] = "ma_vid=" .. cookies[(i % #cookies) + 1]}
  return wrk.format("POST", os.getenv("MA_PATH"), headers, body)
end
