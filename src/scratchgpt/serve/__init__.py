"""The playground: `scratchgpt serve` shows runs in the browser and answers a JSON API.

    runs.py    which runs the server shows, each model loaded once (again when training replaces it),
               a model that generates with its decode loop (inference/batching.py)
    gate.py    one-shot model work off the event loop: a few jobs at once, a short queue, 503 beyond it
    outbox.py  a generation's text, handed from the decode loop's thread to its response
    limits.py  what one request may ask, and the guard on body size
    api.py     the JSON API under /api/ (its docstring lists every endpoint)
    errors.py  every refusal as a status and one line of JSON
    app.py     the FastAPI app and uvicorn
    static/    the page: plain HTML, CSS and JavaScript, no build step, nothing from the network

FastAPI and uvicorn are the optional `serve` extra: pip install 'scratchgpt[serve]'.
"""
