// Starts Swagger UI on /api/docs from a static file, so the page needs no inline script.
window.addEventListener("load", function () {
  var node = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({ url: node.dataset.spec, dom_id: "#swagger-ui", deepLinking: true });
});
