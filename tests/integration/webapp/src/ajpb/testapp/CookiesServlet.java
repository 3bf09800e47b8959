package ajpb.testapp;

import jakarta.servlet.http.Cookie;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Map;

/**
 * /app/cookies?n=N (default 3): N separate Set-Cookie headers ci=vi; Path=/app, and the
 * header X-Multi twice (a, then b).
 */
public class CookiesServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        long n = Node.longParam(Node.queryOne(req, "n"), 3);
        for (long i = 1; i <= n; i++) {
            Cookie c = new Cookie("c" + i, "v" + i);
            c.setPath("/app");
            resp.addCookie(c);
        }
        resp.addHeader("X-Multi", "a");
        resp.addHeader("X-Multi", "b");
        Map<String, Object> m = Node.answer();
        m.put("n", n);
        Node.sendJson(resp, m);
    }
}
