package ajpb.testapp;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Map;

/** /app/status?code=N (default 200): status N with JSON {node, code}; no body for 204/304. */
public class StatusServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        int code = (int) Node.longParam(Node.queryOne(req, "code"), 200);
        resp.setStatus(code);
        if (code == 204 || code == 304) {
            return;
        }
        Map<String, Object> m = Node.answer();
        m.put("code", code);
        Node.sendJson(resp, m);
    }
}
