/**
 * GraphiQL for ganvas's API, served by ganvas itself at /graphql (no CDN): queries over HTTP,
 * subscriptions over graphql-ws. Where the API wants a key, a field above the editor takes it (kept in
 * this browser's localStorage) and every request sends it.
 */
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/style.css';
import { createElement, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';

const STORAGE = 'ganvas.apiKey';
const url = new URL('/graphql', location.href).href;
const wsUrl = url.replace(/^http/, 'ws');

/** Whether this API refuses a request without a key (401), as everywhere but `npm start` on localhost. */
async function keysRequired(): Promise<boolean> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"query":"{ __typename }"}',
  });
  return res.status === 401;
}

const defaultQuery = `# ganvas: captions in, images out. Run this, then subscribe to the id it returns:
#   subscription { generationUpdated(id: "<id>") { status progress images { url seed } } }
mutation {
  generateImages(input: { caption: "a red flower with a large yellow centre", count: 4, seed: 7 }) {
    id
    status
  }
}
`;

function App(props: { askKey: boolean }) {
  const [key, setKey] = useState(() => localStorage.getItem(STORAGE) ?? '');
  const fetcher = useMemo(() => {
    const authorization = key ? `Bearer ${key}` : undefined;
    return createGraphiQLFetcher({
      url,
      subscriptionUrl: wsUrl,
      headers: authorization ? { authorization } : {},
      wsConnectionParams: authorization ? { authorization } : {},
    });
  }, [key]);
  const keyField = createElement(
    'label',
    {
      style: {
        display: 'flex',
        gap: '8px',
        alignItems: 'center',
        padding: '6px 12px',
        font: '14px system-ui',
        background: '#f4f4f6',
      },
    },
    'API key',
    createElement('input', {
      type: 'password',
      value: key,
      placeholder: 'the key npm run key:create printed',
      style: { flex: 1, maxWidth: '40em' },
      onChange: (e: { target: { value: string } }) => {
        setKey(e.target.value.trim());
        localStorage.setItem(STORAGE, e.target.value.trim());
      },
    }),
  );
  return createElement(
    'div',
    { style: { display: 'flex', flexDirection: 'column', height: '100vh' } },
    props.askKey ? keyField : null,
    createElement('div', { style: { flex: 1, minHeight: 0 } }, createElement(GraphiQL, { fetcher, defaultQuery })),
  );
}

void keysRequired()
  .catch(() => true)
  .then((askKey) => createRoot(document.getElementById('graphiql')!).render(createElement(App, { askKey })));
