package ajpb.testapp;

import jakarta.servlet.ServletContextEvent;
import jakarta.servlet.ServletContextListener;
import jakarta.websocket.DeploymentException;
import jakarta.websocket.server.ServerContainer;
import jakarta.websocket.server.ServerEndpointConfig;

/**
 * Deploys WsEcho at /ws/echo through the container's ServerContainer (annotation
 * scanning is off in this webapp, so no @ServerEndpoint).
 */
public class WsSetup implements ServletContextListener {
    @Override
    public void contextInitialized(ServletContextEvent event) {
        ServerContainer container = (ServerContainer) event.getServletContext()
                .getAttribute("jakarta.websocket.server.ServerContainer");
        if (container == null) {
            throw new IllegalStateException("no WebSocket ServerContainer in this Tomcat");
        }
        try {
            container.addEndpoint(ServerEndpointConfig.Builder.create(WsEcho.class, "/ws/echo").build());
        } catch (DeploymentException e) {
            throw new IllegalStateException(e);
        }
    }
}
