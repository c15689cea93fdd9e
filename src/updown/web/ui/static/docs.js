// Swagger UI at /docs, from the vendored bundle (no CDN). A file, not an inline script: the page's
// CSP runs scripts from 'self' only. "Try it out" calls go with the signed-in user's bearer token.
(function () {
  const root = document.getElementById("swagger-ui");

  function bearer() {
    try {
      const session = JSON.parse(localStorage.getItem("updown.session") || "null");
      return session && session.expiresAt > Date.now() ? session.accessToken : null;
    } catch {
      return null;
    }
  }

  window.ui = window.SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The default validator is a third-party service that the page would send the spec URL to.
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
    requestInterceptor(request) {
      const token = bearer();
      const sameOrigin = new URL(request.url, window.location.href).origin === window.location.origin;
      if (token && sameOrigin && !request.headers.Authorization) request.headers.Authorization = `Bearer ${token}`;
      return request;
    },
  });
})();
