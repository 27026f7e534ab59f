#!/usr/bin/python3
#
# The TLS certificates of the guest owner's service (virt-qemu-sev-owner
# serve) and of its clients (the thin agent on each host), made with
# certtool: a CA of the guest owner's, the service's certificate for its
# address, a client certificate per host. Each TLS directory holds the
# names the tool reads: cacert.pem (the CA that signs the peer) and
# servercert.pem/serverkey.pem or clientcert.pem/clientkey.pem.

import os
import shutil
import subprocess


def certtool(*args):
    subprocess.run(["certtool"] + [str(a) for a in args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class CA:
    def __init__(self, dir, cn):
        self.dir = dir
        os.makedirs(dir, mode=0o700, exist_ok=True)
        self.key = os.path.join(dir, "cakey.pem")
        self.cert = os.path.join(dir, "cacert.pem")
        tmpl = os.path.join(dir, "ca.info")
        with open(tmpl, "w") as f:
            f.write('cn = "%s"\nca\ncert_signing_key\nexpiration_days = 2\n' % cn)
        certtool("--generate-privkey", "--key-type=ecdsa", "--curve=secp384r1",
                 "--outfile", self.key)
        certtool("--generate-self-signed", "--load-privkey", self.key,
                 "--template", tmpl, "--outfile", self.cert)

    def issue(self, dir, kind, cn, ips=(), dns=(), trust=None):
        """@kind "server" or "client": @dir/{kind}cert.pem and
        {kind}key.pem signed by this CA, and @dir/cacert.pem: @trust's
        certificate (the CA the peer's certificate must chain to; default
        this one)."""
        os.makedirs(dir, mode=0o700, exist_ok=True)
        key = os.path.join(dir, "%skey.pem" % kind)
        cert = os.path.join(dir, "%scert.pem" % kind)
        tmpl = os.path.join(dir, "%s.info" % kind)
        with open(tmpl, "w") as f:
            f.write('organization = "libvirt-mirror guest owner"\ncn = "%s"\n' % cn)
            f.write("tls_www_server\n" if kind == "server" else "tls_www_client\n")
            for ip in ips:
                f.write('ip_address = "%s"\n' % ip)
            for name in dns:
                f.write('dns_name = "%s"\n' % name)
            f.write("signing_key\nexpiration_days = 2\n")
        certtool("--generate-privkey", "--key-type=ecdsa", "--curve=secp384r1",
                 "--outfile", key)
        os.chmod(key, 0o600)
        certtool("--generate-certificate", "--load-privkey", key,
                 "--load-ca-certificate", self.cert, "--load-ca-privkey", self.key,
                 "--template", tmpl, "--outfile", cert)
        os.unlink(tmpl)
        shutil.copyfile((trust or self).cert, os.path.join(dir, "cacert.pem"))
        return dir
