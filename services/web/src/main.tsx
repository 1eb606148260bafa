import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './app/app'
import { auth } from './lib/auth'
import './index.css'

// Silent login through the HttpOnly refresh cookie, while the first render shows a spinner.
void auth.init()

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
