// The dashboard's HTTP API, with the bearer token kept for the browser session when one is needed.
const tokenKey = 'perfwatch.token';

export class AuthRequired extends Error {}

export function setToken(token) {
  sessionStorage.setItem(tokenKey, token);
}

export async function getJson(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== ''));
  const url = query.toString() ? `${path}?${query}` : path;
  const headers = {};
  const token = sessionStorage.getItem(tokenKey);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { headers });
  if (response.status === 401) throw new AuthRequired('token required');
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// Export links cannot carry a header; they work when no token is configured (the default).
export function exportUrl(target, format, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== ''));
  return `/api/v1/targets/${encodeURIComponent(target)}/${format}?${query}`;
}
