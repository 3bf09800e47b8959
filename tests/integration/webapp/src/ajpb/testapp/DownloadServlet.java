package ajpb.testapp;

import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;

/**
 * /app/download?size=N[&amp;chunked=1][&amp;delayms=D]: N bytes, byte i being i % 251.
 *
 * Written in 64 KiB writes. Content-Length is set unless chunked=1, in which case every
 * write is flushed so that the response goes out chunked. delayms sleeps before every write
 * after the first (the headers and first write are flushed at once), for slow-body tests.
 */
public class DownloadServlet extends HttpServlet {
    private static final int MOD = 251;
    /** IO_CHUNK bytes of the pattern starting at any offset below MOD. */
    private static final byte[] PATTERN = new byte[Node.IO_CHUNK + MOD];

    static {
        for (int i = 0; i < PATTERN.length; i++) {
            PATTERN[i] = (byte) (i % MOD);
        }
    }

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        long size = Math.max(0, Node.longParam(Node.queryOne(req, "size"), 0));
        boolean chunked = "1".equals(Node.queryOne(req, "chunked"));
        long delay = Node.longParam(Node.queryOne(req, "delayms"), 0);
        resp.setContentType("application/octet-stream");
        if (!chunked) {
            resp.setContentLengthLong(size);
        }
        ServletOutputStream out = resp.getOutputStream();
        boolean flushEach = chunked || delay > 0;
        if (flushEach) {
            resp.flushBuffer();
        }
        long pos = 0;
        while (pos < size) {
            if (pos > 0) {
                Node.sleep(delay);
            }
            int n = (int) Math.min(Node.IO_CHUNK, size - pos);
            out.write(PATTERN, (int) (pos % MOD), n);
            pos += n;
            if (flushEach) {
                out.flush();
            }
        }
    }
}
