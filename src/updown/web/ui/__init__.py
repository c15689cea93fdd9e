"""The web UI: server-rendered Jinja2 pages, the static files they load (small ES modules, one
stylesheet, the vendored API-docs bundles) and the security headers the pages are served with."""
