# hnscall.ps1: one HNS v1 call, for @isthmus/dataplane-hns's windowsHnsTransport.
#
#   powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File hnscall.ps1 <METHOD> <PATH>
#
# The request JSON is read from stdin (empty for GET and DELETE); the HNS answer, the
# {"Success","Error","Output"} envelope, is written to stdout. Exit status 0 whenever HNS answered
# (an HNS refusal is in the envelope); 1 with a sentence on stderr when the call could not be made.
#
# HNSCall is vmcompute.dll's one entry point for HNS v1:
#   HRESULT HNSCall(LPCWSTR method, LPCWSTR path, LPCWSTR request, LPWSTR *response)
# The response is allocated by HNS with CoTaskMemAlloc and freed here.
#
# Not exercised on Linux, where isthmus's tests run: they use the HTTP simulator instead.
param(
  [Parameter(Mandatory = $true, Position = 0)][ValidateSet('GET', 'POST', 'DELETE')][string]$Method,
  [Parameter(Mandatory = $true, Position = 1)][string]$Path
)
$ErrorActionPreference = 'Stop'

Add-Type -TypeDefinition @'
using System;
using System.Runtime.InteropServices;

public static class IsthmusHns {
  [DllImport("vmcompute.dll", CharSet = CharSet.Unicode, ExactSpelling = true)]
  private static extern int HNSCall(string method, string path, string request, out IntPtr response);

  public static string Call(string method, string path, string request) {
    IntPtr response = IntPtr.Zero;
    int hr = HNSCall(method, path, request, out response);
    try {
      if (hr != 0) {
        throw new System.ComponentModel.Win32Exception(hr, String.Format("HNSCall {0} {1} failed with HRESULT 0x{2:X8}", method, path, hr));
      }
      return response == IntPtr.Zero ? "" : Marshal.PtrToStringUni(response);
    } finally {
      if (response != IntPtr.Zero) Marshal.FreeCoTaskMem(response);
    }
  }
}
'@

try {
  $stdin = New-Object System.IO.StreamReader([Console]::OpenStandardInput(), (New-Object System.Text.UTF8Encoding($false)))
  $request = $stdin.ReadToEnd()
  $answer = [IsthmusHns]::Call($Method, $Path, $request)
  $stdout = New-Object System.IO.StreamWriter([Console]::OpenStandardOutput(), (New-Object System.Text.UTF8Encoding($false)))
  $stdout.Write($answer)
  $stdout.Flush()
  exit 0
} catch {
  [Console]::Error.WriteLine($_.Exception.Message)
  exit 1
}
