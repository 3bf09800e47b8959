package ajpb.testapp;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpSession;
import java.io.IOException;
import java.util.Map;

/**
 * /app/session: creates the session if needed and increments its counter.
 *
 * The session id ends in ".jvmRoute" (Tomcat appends the Engine's jvmRoute).
 * The answer also carries encodeURL("/app/session"), the URL-rewritten form with
 * ;jsessionid=..., when the request did not come with a session cookie.
 */
public class SessionServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        HttpSession session = req.getSession(true);
        int counter;
        synchronized (session) {
            Object old = session.getAttribute("counter");
            counter = old instanceof Integer i ? i + 1 : 1;
            session.setAttribute("counter", counter);
        }
        Map<String, Object> m = Node.answer();
        m.put("sessionId", session.getId());
        m.put("counter", counter);
        m.put("encodedUrl", resp.encodeURL(req.getContextPath() + "/session"));
        Node.sendJson(resp, m);
    }
}
