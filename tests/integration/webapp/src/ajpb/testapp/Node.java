package ajpb.testapp;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Identity of this Tomcat node and helpers shared by the servlets.
 *
 * The node name and the jvmRoute come from the system properties ajpb.node and
 * ajpb.jvmRoute, set by the Python fixture on the JVM command line.
 */
final class Node {
    static final String NAME = System.getProperty("ajpb.node", "unknown");
    static final String ROUTE = System.getProperty("ajpb.jvmRoute", NAME);
    static final int IO_CHUNK = 64 * 1024;

    private Node() {}

    /** A map pre-filled with "node", for JSON answers. */
    static Map<String, Object> answer() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("node", NAME);
        return m;
    }

    /** Write a JSON body with Content-Length. */
    static void sendJson(HttpServletResponse resp, Object value) throws IOException {
        byte[] body = (Json.write(value) + "\n").getBytes(StandardCharsets.US_ASCII);
        resp.setContentType("application/json");
        resp.setContentLength(body.length);
        resp.getOutputStream().write(body);
    }

    /** Result of reading a whole body. */
    record Body(long length, String sha256) {}

    /** Read a whole body in IO_CHUNK reads, hashing it incrementally. */
    static Body consume(InputStream in) throws IOException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        byte[] buf = new byte[IO_CHUNK];
        long total = 0;
        int n;
        while ((n = in.read(buf)) != -1) {
            digest.update(buf, 0, n);
            total += n;
        }
        return new Body(total, HexFormat.of().formatHex(digest.digest()));
    }

    /**
     * Values of a query-string parameter, in order. Only the query string is parsed, never
     * the body: getParameter() would consume a form-encoded request body.
     */
    static List<String> query(HttpServletRequest req, String name) {
        List<String> values = new ArrayList<>();
        String qs = req.getQueryString();
        if (qs == null) {
            return values;
        }
        for (String pair : qs.split("&")) {
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            String value = eq < 0 ? "" : pair.substring(eq + 1);
            if (decode(key).equals(name)) {
                values.add(decode(value));
            }
        }
        return values;
    }

    private static String decode(String s) {
        try {
            return URLDecoder.decode(s, StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            return s;
        }
    }

    /** The first value of a query-string parameter, or null. */
    static String queryOne(HttpServletRequest req, String name) {
        List<String> values = query(req, name);
        return values.isEmpty() ? null : values.get(0);
    }

    /** Integer query parameter with a default; a malformed value is the default. */
    static long longParam(String value, long dflt) {
        if (value == null || value.isEmpty()) {
            return dflt;
        }
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            return dflt;
        }
    }

    static void sleep(long ms) {
        if (ms <= 0) {
            return;
        }
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
