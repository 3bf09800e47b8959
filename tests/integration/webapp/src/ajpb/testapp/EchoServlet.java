package ajpb.testapp;

import jakarta.servlet.ServletConnection;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletRequestWrapper;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpSession;
import java.io.IOException;
import java.lang.reflect.Field;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * /app/echo (and /app/echo/*), any method: describes the request as Tomcat saw it.
 *
 * service() is overridden so that every method, PATCH and custom ones included, reaches
 * this code. Request headers are listed in arrival order of their first occurrence, each
 * repeat kept as its own pair. Request attributes: every one getAttributeNames() lists,
 * the TLS ones Tomcat computes lazily, the connector-level ones (AJP request attributes,
 * which getAttributeNames() never lists: found by reflection on Tomcat's request), and any
 * named by ?attr=NAME. Attribute values are toString(); arrays are their elements joined
 * by a newline, a certificate being its subject DN (RFC 2253).
 */
public class EchoServlet extends HttpServlet {
    private static final String[] LAZY_ATTRIBUTES = {
        "jakarta.servlet.request.X509Certificate",
        "jakarta.servlet.request.cipher_suite",
        "jakarta.servlet.request.key_size",
        "jakarta.servlet.request.ssl_session_id",
        "org.apache.tomcat.util.net.secure_protocol_version",
    };

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        Map<String, Object> m = Node.answer();
        m.put("method", req.getMethod());
        m.put("uri", req.getRequestURI());
        m.put("query", req.getQueryString());
        m.put("protocol", req.getProtocol());
        m.put("scheme", req.getScheme());
        m.put("secure", req.isSecure());
        m.put("serverName", req.getServerName());
        m.put("serverPort", req.getServerPort());
        m.put("localAddr", req.getLocalAddr());
        m.put("localPort", req.getLocalPort());
        m.put("remoteAddr", req.getRemoteAddr());
        m.put("remotePort", req.getRemotePort());
        m.put("remoteHost", req.getRemoteHost());
        m.put("remoteUser", req.getRemoteUser());
        m.put("authType", req.getAuthType());
        m.put("contextPath", req.getContextPath());
        m.put("servletPath", req.getServletPath());
        m.put("pathInfo", req.getPathInfo());
        m.put("requestUrl", req.getRequestURL().toString());
        ServletConnection conn = req.getServletConnection();
        m.put("connectionId", conn == null ? null : conn.getConnectionId());
        m.put("requestId", req.getRequestId());
        m.put("thread", Thread.currentThread().getName());

        List<Object> headers = new ArrayList<>();
        for (String name : Collections.list(req.getHeaderNames())) {
            for (String value : Collections.list(req.getHeaders(name))) {
                headers.add(List.of(name, value));
            }
        }
        m.put("headers", headers);

        Map<String, Object> attributes = new TreeMap<>();
        for (String name : LAZY_ATTRIBUTES) {
            putAttribute(attributes, req, name);
        }
        for (String name : connectorAttributeNames(req)) {
            putAttribute(attributes, req, name);
        }
        for (String name : Node.query(req, "attr")) {
            putAttribute(attributes, req, name);
        }
        for (String name : Collections.list(req.getAttributeNames())) {
            putAttribute(attributes, req, name);
        }
        m.put("attributes", attributes);

        HttpSession session = req.getSession(false);
        m.put("sessionId", session == null ? null : session.getId());
        m.put("requestedSessionId", req.getRequestedSessionId());

        Node.Body body = Node.consume(req.getInputStream());
        m.put("bodyLength", body.length());
        m.put("bodySha256", body.sha256());
        Node.sendJson(resp, m);
    }

    /**
     * Names of the attributes set by the connector on Tomcat's internal (coyote) request,
     * such as those an AJP client sends. Empty if Tomcat's classes are not as expected.
     */
    private static List<String> connectorAttributeNames(HttpServletRequest req) {
        List<String> names = new ArrayList<>();
        try {
            ServletRequest r = req;
            while (r instanceof ServletRequestWrapper w) {
                r = w.getRequest();
            }
            Field field = null;
            for (Class<?> c = r.getClass(); c != null && field == null; c = c.getSuperclass()) {
                try {
                    field = c.getDeclaredField("request");
                } catch (NoSuchFieldException e) {
                    // look in the superclass
                }
            }
            if (field == null) {
                return names;
            }
            field.setAccessible(true);
            Object catalina = field.get(r);
            Object coyote = catalina.getClass().getMethod("getCoyoteRequest").invoke(catalina);
            Object attributes = coyote.getClass().getMethod("getAttributes").invoke(coyote);
            if (attributes instanceof Map<?, ?> map) {
                for (Object key : map.keySet()) {
                    names.add(String.valueOf(key));
                }
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            // not Tomcat, or a Tomcat whose internals differ: fall back to ?attr=NAME
        }
        return names;
    }

    private static void putAttribute(Map<String, Object> out, HttpServletRequest req, String name) {
        Object value = req.getAttribute(name);
        if (value != null) {
            out.put(name, render(value));
        }
    }

    private static String render(Object value) {
        if (value instanceof Object[] items) {
            List<String> parts = new ArrayList<>();
            for (Object item : items) {
                parts.add(render(item));
            }
            return String.join("\n", parts);
        }
        if (value instanceof X509Certificate cert) {
            return cert.getSubjectX500Principal().getName();
        }
        return value.toString();
    }
}
