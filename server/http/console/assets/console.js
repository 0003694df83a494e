// tierca console: the only script, loaded from /console/assets/ (the CSP allows no inline script).
// It adds conveniences only; every page works without it.
'use strict';
document.addEventListener('DOMContentLoaded', () => {
  // "Read a CSR file": the file's text goes into the CSR text area (the form posts text, not multipart).
  for (const input of document.querySelectorAll('input[type="file"][data-fills]')) {
    input.addEventListener('change', () => {
      const target = document.getElementById(input.dataset.fills);
      const file = input.files && input.files[0];
      if (!target || !file) return;
      if (file.size > 32 * 1024) { target.value = ''; return; }
      file.text().then((text) => {
        target.value = text;
        const csr = document.getElementById('mode-csr');
        if (csr) csr.checked = true;
      });
    });
  }
  // The dual-certificate choice follows the chosen subject: its option's data-encryption is the
  // tier's rule for its kind (none, optional, required). With no subject chosen, the server's page stands.
  const subject = document.getElementById('subjectId');
  const choice = document.getElementById('encryption-choice');
  if (subject && choice) {
    const optional = document.getElementById('encryption-optional');
    const required = document.getElementById('encryption-required');
    const box = document.getElementById('encryption');
    const initial = [choice.hidden, optional.hidden, required.hidden];
    subject.addEventListener('change', () => {
      const option = subject.selectedOptions[0];
      const rule = option && option.value ? option.dataset.encryption : '';
      if (!rule) { [choice.hidden, optional.hidden, required.hidden] = initial; return; }
      choice.hidden = rule === 'none';
      optional.hidden = rule !== 'optional';
      required.hidden = rule !== 'required';
      if (rule !== 'optional' && box) box.checked = false;
    });
  }
  // A once-only download link is spent after one click: say so, so nobody clicks it again.
  for (const link of document.querySelectorAll('.secret a[download]')) {
    link.addEventListener('click', () => {
      setTimeout(() => { link.setAttribute('aria-disabled', 'true'); link.classList.add('spent'); }, 0);
    });
  }
});
