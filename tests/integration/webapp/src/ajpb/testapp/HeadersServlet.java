package ajpb.testapp;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * /app/headers?set=Name:Value&amp;set=...: addHeader(Name, Value) for each, in order (a name
 * given twice gives two fields). Answers JSON {node, set: [[name, value], ...]}.
 */
public class HeadersServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        List<Object> added = new ArrayList<>();
        for (String spec : Node.query(req, "set")) {
            int colon = spec.indexOf(':');
            if (colon <= 0) {
                continue;
            }
            String name = spec.substring(0, colon).trim();
            String value = spec.substring(colon + 1).trim();
            resp.addHeader(name, value);
            added.add(List.of(name, value));
        }
        Map<String, Object> m = Node.answer();
        m.put("set", added);
        Node.sendJson(resp, m);
    }
}
