package ajpb.testapp;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * /app/progress?id=ID: an upload whose progress another request can watch.
 *
 * POST (or PUT) reads the body in 64 KiB reads, publishing the number of bytes read so far
 * under ID after every read, and answers JSON {node, id, bodyLength, bodySha256} as
 * /app/upload does. GET answers JSON {node, id, read}: the bytes the upload with that ID
 * has read so far (-1 if none started), so a test can prove that Tomcat reads a body
 * while the client is still sending it. IDs are kept until the JVM exits (tests use few).
 */
public class ProgressServlet extends HttpServlet {
    private static final Map<String, AtomicLong> READ = new ConcurrentHashMap<>();

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String id = Node.queryOne(req, "id");
        if (id == null || id.isEmpty()) {
            resp.sendError(400, "id required");
            return;
        }
        Map<String, Object> m = Node.answer();
        m.put("id", id);
        if ("GET".equals(req.getMethod())) {
            AtomicLong read = READ.get(id);
            m.put("read", read == null ? -1L : read.get());
            Node.sendJson(resp, m);
            return;
        }
        AtomicLong read = new AtomicLong();
        READ.put(id, read);
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        InputStream in = req.getInputStream();
        byte[] buf = new byte[Node.IO_CHUNK];
        int n;
        while ((n = in.read(buf)) != -1) {
            digest.update(buf, 0, n);
            read.addAndGet(n);
        }
        m.put("bodyLength", read.get());
        m.put("bodySha256", HexFormat.of().formatHex(digest.digest()));
        Node.sendJson(resp, m);
    }
}
