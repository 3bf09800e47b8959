package ajpb.testapp;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;

/**
 * /app/redirect?to=PATH (default /app/echo): sendRedirect(to), a 302.
 *
 * The base's conf/context.xml sets useRelativeRedirects="false", so Tomcat makes the
 * Location absolute with the scheme, host and port the request arrived with.
 */
public class RedirectServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String to = Node.queryOne(req, "to");
        resp.sendRedirect(to == null ? "/app/echo" : to);
    }
}
