package ajpb.testapp;

import jakarta.servlet.http.Cookie;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Map;

/**
 * /app/balanceid: sets the cookie BALANCEID=balancer.JVMROUTE; Path=/app, as an application
 * does that routes its own sessions (Apache's stickysession=BALANCEID), and answers JSON
 * {node, balanceId} with the value it set.
 */
public class BalanceIdServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String value = "balancer." + Node.ROUTE;
        Cookie c = new Cookie("BALANCEID", value);
        c.setPath(req.getContextPath());
        resp.addCookie(c);
        Map<String, Object> m = Node.answer();
        m.put("balanceId", value);
        Node.sendJson(resp, m);
    }
}
