"""Development sandboxes: small stand-ins for services the tests need (token servers, proxies)."""
