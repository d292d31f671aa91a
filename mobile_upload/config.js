// Deployment settings for the upload page. Empty apiBase = the API is on this same origin
// (the local stack). For a static deployment, set it to the stack's HttpApiUrl output.
window.ONEEYE_CONFIG = window.ONEEYE_CONFIG || { apiBase: "" };
