package ajpb.testapp;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.util.Map;

/** /app/upload (POST, PUT, any method): length and SHA-256 of the body, read in 64 KiB reads. */
public class UploadServlet extends HttpServlet {
    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        Node.Body body = Node.consume(req.getInputStream());
        Map<String, Object> m = Node.answer();
        m.put("method", req.getMethod());
        m.put("bodyLength", body.length());
        m.put("bodySha256", body.sha256());
        m.put("contentLength", req.getHeader("Content-Length"));
        m.put("transferEncoding", req.getHeader("Transfer-Encoding"));
        Node.sendJson(resp, m);
    }
}
