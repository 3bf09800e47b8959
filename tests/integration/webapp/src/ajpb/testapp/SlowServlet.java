package ajpb.testapp;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Map;

/** /app/slow?ms=N: sleeps N ms before writing anything, then JSON {node, slept}. */
public class SlowServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        long ms = Math.max(0, Node.longParam(Node.queryOne(req, "ms"), 0));
        Node.sleep(ms);
        Map<String, Object> m = Node.answer();
        m.put("slept", ms);
        Node.sendJson(resp, m);
    }
}
