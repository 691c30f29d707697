"""The user-space proxy data plane (asyncio on uvloop)."""
