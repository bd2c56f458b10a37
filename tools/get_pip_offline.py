# Offline stand-in for ansible-test's get-pip download (installed by `make setup`).
# ansible-test (ansible-core 2.19) creates a virtual environment for each sanity test and
# bootstraps pip in it by downloading get-pip 24.2 from the internet. Where the internet is
# out of reach but a package index is configured, save this file as
#   ~/.ansible/test/cache/get_pip_24_2.py
# and ansible-test runs it instead: pip from ensurepip, then pip 24.2 from the index.
# ansible-test clears the environment (PIP_CERT and SSL_CERT_FILE do not reach this script),
# so the system CA bundle is passed to pip explicitly where it exists.
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
command = [sys.executable, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check']
for bundle in ('/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'):
    if os.path.exists(bundle):
        command += ['--cert', bundle]
        break
subprocess.check_call(command + ['pip==24.2'])
