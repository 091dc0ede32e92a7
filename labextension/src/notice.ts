/**
 * The warning a page that is not cross-origin isolated shows: a short toast, and behind its
 * action a dialog with the fix for this host first, then the fixes for the other hosts (an
 * author trying a site locally learns what the host it deploys to needs).
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { ISOLATION_HEADERS, ISOLATION_HOSTS } from './abi.js';
import { hostFix, hostLabel, isolation } from './isolation.js';

function paragraph(text: string): HTMLParagraphElement {
  const p = document.createElement('p');
  p.textContent = text;
  return p;
}

/** The dialog's body: why, the fix here, the fixes elsewhere. */
export function fixBody(reason: string, hostname: string): Widget {
  const here = hostFix(hostname);
  const body = new Widget();
  body.addClass('jr-fix');
  body.node.append(
    paragraph(`This page is ${reason}. Threads need the headers ${ISOLATION_HEADERS}.`),
    paragraph(`Here (${hostname}): ${here.fix}.`),
    paragraph('On other hosts:')
  );
  const list = document.createElement('ul');
  for (const row of ISOLATION_HOSTS) {
    if (row !== here) {
      const item = document.createElement('li');
      item.textContent = `${hostLabel(row)}: ${row.fix}.`;
      list.append(item);
    }
  }
  body.node.append(list);
  return body;
}

/** Warn, with the fix one click away, when the page cannot run threads. */
export function warnUnlessIsolated(): void {
  const state = isolation();
  if (state.isolated) {
    return;
  }
  // Toasts cut long text: the short reason here, the fix behind the action.
  Notification.warning(
    'jupyterlite-rayon runs on one thread: this page is not cross-origin isolated.',
    {
      autoClose: false,
      actions: [
        {
          label: 'How to fix',
          callback: () => {
            void showDialog({
              title: 'Threads need a cross-origin isolated page',
              body: fixBody(state.reason, window.location.hostname),
              buttons: [Dialog.okButton()]
            });
          }
        }
      ]
    }
  );
}
