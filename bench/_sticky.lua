-- The seed targets' load (bench/protocols.py): the URL wrk is given, but half of the
-- requests carry a Tomcat session cookie with a route, so that sticky routing is
-- exercised. Requests cycle through four forms:
--
--   1. Cookie: JSESSIONID=x.node1   sticky: must go to node1
--   2. no cookie                    balanced (lbmethod byrequests)
--   3. Cookie: JSESSIONID=x.node2   sticky: must go to node2
--   4. no cookie                    balanced
--
-- so that half the requests are routed by their cookie, half by the balancer, and the
-- two nodes get the same share. The four requests are formatted once (init); request()
-- hands out a prepared string, as wrk's static mode would, so wrk's own cost per
-- request stays close to the other targets'. wrk runs with -t1: one Lua state, one
-- counter for all connections.

local requests = {}
local count = 0

function init(args)
   local plain = wrk.format(nil, nil)
   requests = {
      wrk.format(nil, nil, { Cookie = "JSESSIONID=x.node1" }),
      plain,
      wrk.format(nil, nil, { Cookie = "JSESSIONID=x.node2" }),
      plain,
   }
end

function request()
   count = count % #requests + 1
   return requests[count]
end
