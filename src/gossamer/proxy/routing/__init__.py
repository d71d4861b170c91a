"""Route tables compiled from RouteConfiguration; pure request → route decisions."""
