package ajpb.testapp;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * /app/hold, to prove where a request body was delivered.
 *
 * POST /app/hold?tag=T&amp;ms=N: reads the whole body, remembers T (in memory, for the life
 * of the JVM), then sleeps N ms and answers JSON {node, tag, bodyLength}. A test can kill
 * the node while it sleeps, knowing the body was received.
 * GET /app/hold?peek=T: JSON {node, tag: T, seen: whether a body tagged T was received}.
 */
public class HoldServlet extends HttpServlet {
    private static final Set<String> RECEIVED = ConcurrentHashMap.newKeySet();

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        Map<String, Object> m = Node.answer();
        String peek = Node.queryOne(req, "peek");
        if (peek != null) {
            m.put("tag", peek);
            m.put("seen", RECEIVED.contains(peek));
            Node.sendJson(resp, m);
            return;
        }
        String tag = Node.queryOne(req, "tag");
        Node.Body body = Node.consume(req.getInputStream());
        if (tag != null) {
            RECEIVED.add(tag);
        }
        Node.sleep(Math.max(0, Node.longParam(Node.queryOne(req, "ms"), 0)));
        m.put("tag", tag);
        m.put("bodyLength", body.length());
        Node.sendJson(resp, m);
    }
}
