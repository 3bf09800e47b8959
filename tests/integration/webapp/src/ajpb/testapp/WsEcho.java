package ajpb.testapp;

import jakarta.websocket.CloseReason;
import jakarta.websocket.Endpoint;
import jakarta.websocket.EndpointConfig;
import jakarta.websocket.MessageHandler;
import jakarta.websocket.Session;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A Jakarta WebSocket echo endpoint at /ws/echo (deployed by WsSetup).
 *
 * Binary messages come back as they were sent, piece by piece as they arrive (so a
 * message of any size passes with Tomcat's default buffers: no buffer of the message's
 * size is allocated per session); text messages come back whole (up to 1 MiB), except
 * these commands: "whoami" answers "node=ROUTE" (the jvmRoute of this node);
 * "close:CODE:REASON" closes with that code and reason; "flood:N" sends N binary
 * messages of 64 KiB at once, on a thread of its own, blocking as the peer reads (a
 * client that never reads holds it there until the connection goes).
 */
public class WsEcho extends Endpoint {
    static final int MAX_TEXT = 1024 * 1024;

    @Override
    public void onOpen(Session session, EndpointConfig config) {
        session.setMaxIdleTimeout(0);
        StringBuilder text = new StringBuilder();
        session.addMessageHandler(String.class, (MessageHandler.Partial<String>) (part, last) -> {
            if (text.length() + part.length() > MAX_TEXT) {
                text.setLength(0);
                return;
            }
            text.append(part);
            if (last) {
                String whole = text.toString();
                text.setLength(0);
                onText(session, whole);
            }
        });
        session.addMessageHandler(ByteBuffer.class, (MessageHandler.Partial<ByteBuffer>) (part, last) -> {
            try {
                session.getBasicRemote().sendBinary(part, last);
            } catch (IOException e) {
                // the peer is gone
            }
        });
    }

    private static void onText(Session session, String text) {
        try {
            if (text.equals("whoami")) {
                session.getBasicRemote().sendText("node=" + Node.ROUTE);
            } else if (text.startsWith("close:")) {
                String[] parts = text.split(":", 3);
                int code = Integer.parseInt(parts[1]);
                String reason = parts.length > 2 ? parts[2] : "";
                session.close(new CloseReason(CloseReason.CloseCodes.getCloseCode(code), reason));
            } else if (text.startsWith("flood:")) {
                int count = Integer.parseInt(text.substring(6));
                Thread flood = new Thread(() -> flood(session, count), "ws-flood");
                flood.setDaemon(true);
                flood.start();
            } else {
                session.getBasicRemote().sendText(text);
            }
        } catch (IOException e) {
            // the peer is gone
        }
    }

    private static void flood(Session session, int count) {
        byte[] chunk = new byte[64 * 1024];
        try {
            for (int i = 0; i < count && session.isOpen(); i++) {
                session.getBasicRemote().sendBinary(ByteBuffer.wrap(chunk));
            }
        } catch (IOException | IllegalStateException e) {
            // the peer is gone
        }
    }
}
